"""Behaviour of the Zoo-Tuning core: layers, zooify, merge, gate read-out."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from zoo_rl.core import (
    CONV_STRATEGIES,
    LINEAR_STRATEGIES,
    ZooConv2d,
    ZooLinear,
    ZooOptions,
    freeze_gates,
    merge,
    readouts,
    set_acting_cache,
    set_prior,
    zoo_layers,
    zooify,
)

# The options that make a zoo of unrelated sources trainable (see zoo_rl.core.ZooOptions).
TRANSFER = ZooOptions(gate_norm="softmax", gate_temperature=0.1, shared_prior=True, rescale=True)


def nature_cnn() -> nn.Module:
    """NatureCNN's shape (SB3's feature extractor), built here to keep the core tests RL-free."""
    return nn.Sequential(
        nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(),
    )  # fmt: skip


class TinyResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.shortcut = nn.Conv2d(3, 8, 1, bias=False)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))
        return self.head(y.mean(dim=(2, 3)))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_sources(template: nn.Module, m: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [{k: torch.randn(v.shape, generator=gen) * 0.1 for k, v in template.state_dict().items()} for _ in range(m)]


def obs(batch: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 4, 84, 84, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("conv_strategy", CONV_STRATEGIES)
@pytest.mark.parametrize("linear_strategy", LINEAR_STRATEGIES)
def test_identical_sources_reproduce_the_source(conv_strategy, linear_strategy):
    template = nature_cnn()
    zoo = zooify(
        template, [template.state_dict()] * 3, ZooOptions(conv_strategy=conv_strategy, linear_strategy=linear_strategy)
    )
    x = obs()
    torch.testing.assert_close(zoo(x), template(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("norm", ["normalized", "softmax"])
def test_gate_coefficients_sum_to_one_so_identical_sources_stay_one_source(norm):
    w, b = torch.randn(8, 3, 3, 3), torch.randn(8)
    layer = ZooConv2d([w] * 3, [b] * 3, padding=1, options=ZooOptions(gate_norm=norm))
    nn.init.normal_(layer.gate.fc2.weight)
    x = torch.randn(2, 3, 10, 10)
    expected = torch.nn.functional.conv2d(x, w, b, padding=1)
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [0, 2])
def test_one_hot_gate_reproduces_that_source(k):
    template = nature_cnn()
    sources = random_sources(template, 3)
    zoo = zooify(template, sources)
    freeze_gates(zoo, torch.nn.functional.one_hot(torch.tensor(k), 3).float())
    template.load_state_dict(sources[k])
    x = obs()
    torch.testing.assert_close(zoo(x), template(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("conv_strategy", CONV_STRATEGIES)
@pytest.mark.parametrize("linear_strategy", LINEAR_STRATEGIES)
def test_per_sample_strategies_agree(conv_strategy, linear_strategy):
    template = nature_cnn()
    sources = random_sources(template, 4)
    ref = zooify(template, sources, ZooOptions(conv_strategy="mix", linear_strategy="mix"))
    other = zooify(template, sources, ZooOptions(conv_strategy=conv_strategy, linear_strategy=linear_strategy))
    other.load_state_dict(ref.state_dict())
    x = obs()
    torch.testing.assert_close(other(x), ref(x), rtol=1e-4, atol=1e-5)


def test_each_sample_gets_its_own_weights():
    """A batch's outputs equal the outputs of each sample alone (no batch coupling)."""
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3))
    x = obs(batch=4)
    together = zoo(x)
    alone = torch.cat([zoo(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)


def test_pooled_linear_gate_reads_the_channel_means_of_the_flattened_map():
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), gate_unflatten={"7": (64, 7, 7)})
    linear = zoo_layers(zoo)["7"]
    assert linear.gate.fc1.in_features == 64
    maps = torch.rand(5, 64, 7, 7)
    expected = torch.sigmoid(linear.gate.fc2(torch.relu(linear.gate.fc1(maps.mean(dim=(2, 3))))))
    torch.testing.assert_close(linear.gate(maps.flatten(1)), expected / expected.sum(1, keepdim=True))
    with pytest.raises(ValueError, match=r"3136 features cannot be viewed as \(32, 7, 7\)"):
        zooify(template, random_sources(template, 3), gate_unflatten={"7": (32, 7, 7)})


@pytest.mark.parametrize("lite", [False, True])
def test_acting_without_gradients_follows_every_in_place_change(lite):
    """Aligned and (lite) merged weights are cached while acting without gradients; any
    in-place change of a parameter or buffer (optimizer step, EMA, load_state_dict) must
    refresh them."""
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), ZooOptions(lite=lite)).eval()
    x = obs(batch=2)
    with torch.no_grad():
        before = zoo(x)
        for tensor in [*zoo.parameters(), *(layer.ema for layer in zoo_layers(zoo).values())]:
            tensor.mul_(torch.rand_like(tensor) + 0.5)
        after = zoo(x)
    torch.testing.assert_close(after, zoo(x))  # with gradients: nothing cached
    assert not torch.allclose(before, after)


def test_the_acting_cache_gives_the_same_outputs_and_is_dropped_when_training_resumes():
    """Within a stretch where nothing writes the weights (one rollout), lite layers mix their
    weights once; the outputs are those of mixing at every call, and a step back into training
    mode (where an optimizer writes the weights) drops what was kept."""
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), ZooOptions(lite=True))
    x = obs(batch=2)
    zoo.eval()
    with torch.no_grad():
        reference = zoo(x)
        set_acting_cache(zoo, True)
        assert torch.equal(zoo(x), reference) and torch.equal(zoo(x), reference)
        assert all(layer._acting is not None for layer in zoo_layers(zoo).values())
    zoo.train()
    with torch.no_grad():
        for weight in zoo.parameters():
            weight.mul_(1.5)
    zoo.eval()
    with torch.no_grad():
        changed = zoo(x)
        set_acting_cache(zoo, False)
        torch.testing.assert_close(changed, zoo(x))
    assert not torch.allclose(changed, reference)


def test_lite_eval_equals_merged_model():
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), ZooOptions(lite=True))
    zoo.train()
    sources = ["a", "b", "c"]
    initial = readouts(zoo, sources)
    assert set(initial) == {f"gate_{kind}/{layer}/{s}" for kind in ("last", "ema") for layer in "0247" for s in sources}
    for seed in range(5):
        zoo(obs(seed=seed))
    moved = readouts(zoo, sources)
    assert any(moved[tag] != pytest.approx(initial[tag], abs=1e-6) for tag in moved if tag.startswith("gate_ema"))
    zoo.eval()
    merged = merge(zoo)
    x = obs(seed=99)
    torch.testing.assert_close(merged(x), zoo(x), rtol=1e-5, atol=1e-5)


def test_merging_draws_no_random_number():
    """Merging mid-training (a look at the acting network, a cost measurement) must leave the
    training's random stream as it was: the plain layers are built without a default init."""
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), ZooOptions(lite=True))
    state = torch.get_rng_state()
    merge(zoo)
    assert torch.equal(torch.get_rng_state(), state)


def test_lite_training_uses_batch_mean_and_ema_rule():
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), ZooOptions(lite=True, ema_momentum=0.9))
    layer = zoo_layers(zoo)["0"]
    before = layer.ema.clone()
    x = obs()
    expected_mean = layer.gate(x).mean(0)
    zoo(x)
    torch.testing.assert_close(layer.ema, 0.9 * before + 0.1 * expected_mean)
    torch.testing.assert_close(layer.last_coefficients, expected_mean)


def test_lite_eval_runs_no_gate():
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 2), ZooOptions(lite=True)).eval()
    calls = []
    for layer in zoo_layers(zoo).values():
        layer.gate.register_forward_hook(lambda *a: calls.append(1))
    zoo(obs())
    assert calls == []


def test_merged_module_has_template_keys_shapes_and_size():
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), ZooOptions(lite=True))
    merged = merge(zoo)
    assert [type(m) for m in merged.modules()] == [type(m) for m in template.modules()]
    assert {k: v.shape for k, v in merged.state_dict().items()} == {
        k: v.shape for k, v in template.state_dict().items()
    }
    count = sum(p.numel() for p in template.parameters())
    assert sum(p.numel() for p in merged.parameters()) == count


def test_full_zoo_cannot_be_merged_without_frozen_gates():
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 2))
    with pytest.raises(ValueError, match="freeze_gate"):
        merge(zoo)
    freeze_gates(zoo, [0.25, 0.75])
    x = obs()
    torch.testing.assert_close(merge(zoo)(x), zoo(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lite", [False, True])
def test_gradients_reach_sources_alignment_and_gate(lite):
    template = nature_cnn()
    torch.manual_seed(0)
    zoo = zooify(template, random_sources(template, 3), ZooOptions(lite=lite, align_linear=True))
    # Centred inputs: with all-positive frames a 2-unit gate hidden layer can start dead.
    x = torch.randn(6, 4, 84, 84, generator=torch.Generator().manual_seed(1))
    zoo(x).pow(2).mean().backward()
    for name, layer in zoo_layers(zoo).items():
        assert layer.weights.grad is not None and (layer.weights.grad.flatten(1).abs().sum(1) > 0).all(), name
        assert layer.biases.grad is not None and (layer.biases.grad.abs().sum(1) > 0).all(), name
        assert layer.align is not None and (layer.align.grad.flatten(1).abs().sum(1) > 0).all(), name
        for p in layer.gate.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_alignment_defaults_follow_kernel_size_and_layer_type():
    template = TinyResBlock()
    zoo = zooify(template, random_sources(template, 2))
    layers = zoo_layers(zoo)
    assert layers["conv1"].align is not None
    assert layers["shortcut"].align is None  # 1x1 kernel
    assert layers["head"].align is None  # linear: off by default


def test_state_dict_round_trip():
    template = nature_cnn()
    sources = random_sources(template, 3)
    zoo = zooify(template, sources, ZooOptions(lite=True))
    for seed in range(3):
        zoo(obs(seed=seed))
    freeze_gates(zoo, [0.2, 0.3, 0.5])
    buffer = io.BytesIO()
    torch.save(zoo.state_dict(), buffer)
    buffer.seek(0)
    fresh = zooify(template, random_sources(template, 3, seed=5), ZooOptions(lite=True))
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    zoo.eval()
    fresh.eval()
    x = obs()
    torch.testing.assert_close(fresh(x), zoo(x))


def test_zooify_resnet_block_resets_running_stats_and_averages_bn():
    template = TinyResBlock()
    sources = random_sources(template, 3)
    for sd in sources:
        sd["bn1.running_mean"] = torch.full((8,), 5.0)
        sd["bn1.running_var"] = torch.full((8,), 9.0)
    zoo = zooify(template, sources)
    assert set(zoo_layers(zoo)) == {"conv1", "conv2", "shortcut", "head"}
    torch.testing.assert_close(zoo.bn1.running_mean, torch.zeros(8))
    torch.testing.assert_close(zoo.bn1.running_var, torch.ones(8))
    torch.testing.assert_close(zoo.bn2.weight.data, torch.stack([sd["bn2.weight"] for sd in sources]).mean(0))
    out = zoo(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 5)


def test_include_and_exclude_patterns():
    template = TinyResBlock()
    zoo = zooify(template, random_sources(template, 2), include=["conv*", "head"], exclude=["conv2"])
    assert set(zoo_layers(zoo)) == {"conv1", "head"}
    assert isinstance(zoo.conv2, nn.Conv2d)


def test_missing_key_error_names_source_and_key():
    template = nature_cnn()
    sources = random_sources(template, 2)
    del sources[1]["7.weight"]
    with pytest.raises(ValueError, match=r"source 1: missing key '7\.weight'"):
        zooify(template, sources)


def test_shape_mismatch_error_names_both_shapes():
    template = nature_cnn()
    sources = random_sources(template, 2)
    sources[0]["0.weight"] = torch.zeros(32, 3, 8, 8)
    with pytest.raises(ValueError, match=r"source 0: key '0\.weight' has shape \(32, 3, 8, 8\).*\(32, 4, 8, 8\)"):
        zooify(template, sources)


def test_empty_zoo_is_an_error():
    with pytest.raises(ValueError, match="at least one source"):
        zooify(nature_cnn(), [])


def test_layer_constructor_errors():
    with pytest.raises(ValueError, match="2-d"):
        ZooLinear([torch.zeros(2, 2, 3, 3)])
    with pytest.raises(ValueError, match="4-d"):
        ZooConv2d([torch.zeros(2, 2)])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(conv_strategy="loop"), "conv_strategy must be one of"),
        (dict(linear_strategy="grouped"), "linear_strategy must be one of"),
        (dict(gate_norm="sparsemax"), "gate_norm must be one of"),
        (dict(gate_norm="softmax", gate_temperature=0.0), "gate_temperature must be > 0"),
        (dict(shared_prior=True), "shared_prior needs gate_norm='softmax'"),
        (dict(ema_momentum=1.0), r"ema_momentum must be in \[0, 1\)"),
    ],
)
def test_options_refuse_bad_values_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        ZooOptions(**changes)
    with pytest.raises(ValueError, match=message):
        ZooOptions().replace(**changes)


def test_options_are_frozen_and_refuse_unknown_names():
    options = ZooOptions()
    with pytest.raises(AttributeError):
        options.lite = True  # type: ignore[misc]
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['source_grad_scale'\]"):
        options.replace(source_grad_scale=3.0)
    assert options.replace(lite=True) == ZooOptions(lite=True) and not options.lite


@pytest.mark.parametrize("lite", [False, True])
@pytest.mark.parametrize("fused", [False, True])
def test_no_grad_forward_after_an_optimizer_step_uses_the_new_weights(lite, fused):
    """Acting, an optimizer step, acting again: the second forward must see the new
    weights (fused Adam writes without bumping version counters)."""
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), ZooOptions(lite=lite)).eval()
    optimizer = torch.optim.Adam(zoo.parameters(), lr=1e-2, fused=fused)
    x = obs(batch=2)
    loss = zoo(x).pow(2).mean()  # a loss taken first (eval mode: no lite EMA update)
    with torch.no_grad():
        zoo(x)  # then acting
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        served = zoo(x)
    fresh = zooify(template, random_sources(template, 3), ZooOptions(lite=lite)).eval()
    fresh.load_state_dict(zoo.state_dict())
    torch.testing.assert_close(served, fresh(x))


@pytest.mark.parametrize("lite", [False, True])
def test_a_target_network_follows_writes_through_data(lite):
    """SB3's target-network update writes through ``.data``; the target must act with the
    copied weights, and (lite) with the copied EMA, which SB3 copies by its "running_" name."""
    from stable_baselines3.common.utils import get_parameters_by_name, polyak_update

    template = nature_cnn()
    online = zooify(template, random_sources(template, 3), ZooOptions(lite=lite))
    target = zooify(template, random_sources(template, 3, seed=7), ZooOptions(lite=lite)).eval()
    x = obs(batch=2)
    for seed in range(3):
        online(obs(seed=seed))  # moves the lite EMA
    with torch.no_grad():
        target(x)
    polyak_update(online.parameters(), target.parameters(), 1.0)
    polyak_update(get_parameters_by_name(online, ["running_"]), get_parameters_by_name(target, ["running_"]), 1.0)
    online.eval()
    with torch.no_grad():
        torch.testing.assert_close(target(x), online(x))


def test_softmax_gate_over_positive_frames_has_no_dead_unit_and_every_parameter_learns():
    """Four all-positive frame means (the first conv's input): the paper's 2-unit ReLU gate
    can start dead; the softmax gate's hidden units all respond and all its weights learn."""
    torch.manual_seed(3)
    options = ZooOptions(gate_norm="softmax", gate_temperature=0.1)
    layer = ZooConv2d([torch.randn(8, 4, 3, 3) for _ in range(3)], options=options)
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    target = torch.randn(6, 8, 8, 8)
    for step in range(3):
        x = torch.rand(6, 4, 10, 10, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        (layer(x) - target).pow(2).mean().backward()
        optimizer.step()
    for name, p in layer.gate.named_parameters():
        assert p.grad is not None and (p.grad != 0).all(), name
    hidden = layer.gate.fc1(x.mean(dim=(2, 3)))
    assert (hidden.std(dim=0) > 0).all()


def test_sb3_style_reinitialisation_leaves_the_gates_alone():
    """SB3 re-initialises every nn.Linear of a features extractor; the gates keep theirs."""
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), TRANSFER)
    before = {k: v.clone() for k, v in zoo.state_dict().items() if ".gate." in k}

    def sb3_init(module):
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.orthogonal_(module.weight, gain=2**0.5)
            if module.bias is not None:
                module.bias.data.fill_(0.3)

    zoo.apply(sb3_init)
    after = zoo.state_dict()
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, msg=key)


def test_softmax_gate_starts_at_the_shared_prior_and_the_prior_is_one_parameter():
    template = nature_cnn()
    zoo = zooify(template, random_sources(template, 3), TRANSFER.replace(lite=True))
    x = obs()
    for layer in zoo_layers(zoo).values():
        torch.testing.assert_close(layer.gate(_layer_input(zoo, layer, x)), torch.full((6, 3), 1 / 3))
    set_prior(zoo, [0.2, 0.0, -0.2])
    expected = torch.softmax(torch.tensor([0.2, 0.0, -0.2]) / 0.1, dim=0)
    for layer in zoo_layers(zoo).values():
        torch.testing.assert_close(layer.ema, expected)
    priors = [p for name, p in zoo.named_parameters() if "prior" in name]
    assert len(priors) == 1
    zoo(x).pow(2).mean().backward()
    assert priors[0].grad.abs().sum() > 0
    with pytest.raises(ValueError, match="shared_prior"):
        set_prior(zooify(template, random_sources(template, 3)), [0.0, 0.0, 0.0])


def _layer_input(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    seen = []
    handle = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("conv_strategy", CONV_STRATEGIES)
@pytest.mark.parametrize("linear_strategy", LINEAR_STRATEGIES)
def test_rescaled_mixture_keeps_the_norm_of_its_parts(conv_strategy, linear_strategy):
    """Per sample and channel the mixed weight has norm sum_i a_i ||w_i||: a model of
    rescaled layers equals, sample by sample, the frozen model with those coefficients."""
    template = nature_cnn()
    sources = random_sources(template, 3)
    zoo = zooify(
        template, sources, ZooOptions(rescale=True, conv_strategy=conv_strategy, linear_strategy=linear_strategy)
    )
    x = obs(batch=3)
    together = zoo(x)
    for i in range(3):
        coefficients = {name: layer.gate(_layer_input(zoo, layer, x[i : i + 1]))[0]
                        for name, layer in zoo_layers(zoo).items()}  # fmt: skip
        frozen = zooify(template, sources, ZooOptions(rescale=True))
        frozen.load_state_dict(zoo.state_dict())
        for name, layer in zoo_layers(frozen).items():
            layer.freeze_gate(coefficients[name].detach())
        merged = merge(frozen)
        torch.testing.assert_close(together[i : i + 1], merged(x[i : i + 1]), rtol=1e-4, atol=1e-3)  # outputs ~40
        for name, layer in zoo_layers(frozen).items():
            parts = torch.tensordot(coefficients[name].detach(), layer.weights.flatten(2).norm(dim=2), dims=1)
            weight = merged.get_submodule(name).weight
            torch.testing.assert_close(weight.flatten(1).norm(dim=1), parts)


def test_rescale_is_exact_for_identical_sources_and_one_hot_gates():
    template = nature_cnn()
    x = obs()
    same = zooify(template, [template.state_dict()] * 3, ZooOptions(rescale=True))
    torch.testing.assert_close(same(x), template(x), rtol=1e-5, atol=1e-5)
    sources = random_sources(template, 3)
    zoo = zooify(template, sources, ZooOptions(rescale=True))
    freeze_gates(zoo, [0.0, 1.0, 0.0])
    template.load_state_dict(sources[1])
    torch.testing.assert_close(zoo(x), template(x), rtol=1e-5, atol=1e-5)


def test_rescale_keeps_the_features_of_orthogonal_sources_alive():
    """Averaging unrelated sources shrinks every layer; with rescale the mixture's
    features keep the scale of a source's."""
    template = nature_cnn()
    sources = []
    for seed in range(5):
        torch.manual_seed(seed)
        net = nature_cnn()
        sources.append(net.state_dict())
    x = obs(batch=16)
    single = template(x).var(dim=0).mean()
    averaged = zooify(template, sources)(x).var(dim=0).mean()
    rescaled = zooify(template, sources, ZooOptions(rescale=True))(x).var(dim=0).mean()
    assert averaged < single / 10
    assert single / 3 < rescaled < single * 3


def test_under_uniform_gates_each_of_m_identical_sources_gets_1_over_m_of_the_gradient():
    template = nature_cnn()
    x = obs()
    template(x).pow(2).mean().backward()
    zoo = zooify(template, [template.state_dict()] * 3, ZooOptions(gate_norm="softmax", rescale=True))
    zoo(x).pow(2).mean().backward()
    for name, layer in zoo_layers(zoo).items():
        plain = template.get_submodule(name).weight.grad
        for i in range(3):
            torch.testing.assert_close(layer.weights.grad[i], plain / 3, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    ("options", "as_alone"),
    [(dict(align=False), True), (dict(align=True), False)],
)
def test_a_one_hot_zoo_trains_as_its_member_alone_only_without_alignment(options, as_alone):
    """A zoo whose gate sits on one member should learn as that member alone (finetuning):
    under Adam it does, step for step, without trainable alignment; with it (``T @ W``: two
    factors that both move) the same zoo takes other, larger steps."""
    template = nature_cnn()
    sources = random_sources(template, 3)
    zoo = zooify(template, sources, ZooOptions(rescale=True, **options))
    freeze_gates(zoo, [0.0, 1.0, 0.0])
    template.load_state_dict(sources[1])
    optimizers = [torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-5) for model in (zoo, template)]
    for step in range(3):
        for model, optimizer in zip((zoo, template), optimizers, strict=True):
            optimizer.zero_grad()
            model(obs(seed=step)).pow(2).mean().backward()
            optimizer.step()
    trained, alone = merge(zoo).state_dict(), template.state_dict()
    same = all(torch.allclose(trained[k], alone[k], rtol=1e-4, atol=1e-6) for k in alone)
    assert same == as_alone


def test_zoo_linear_treats_leading_dimensions_as_batch():
    torch.manual_seed(0)
    layer = ZooLinear([torch.randn(5, 7) for _ in range(3)], [torch.randn(5) for _ in range(3)])  # per-sample gates
    x = torch.randn(2, 4, 7)
    torch.testing.assert_close(layer(x), layer(x.reshape(8, 7)).view(2, 4, 5))


def test_the_channel_gram_has_einsums_values_and_gradients():
    """Full Zoo-Tuning's per-channel Gram matrices (its per-sample rescale) with one batched
    product in the backward equal autograd's through the einsum, and pass the numerical check."""
    from zoo_rl.core.layers import channel_gram

    gen = torch.Generator().manual_seed(0)
    weights = torch.randn(3, 5, 8, generator=gen, dtype=torch.float64).requires_grad_()
    torch.autograd.gradcheck(channel_gram, (weights,))
    upstream = torch.randn(5, 3, 3, generator=gen, dtype=torch.float64)
    results = []
    for fn in (channel_gram, lambda w: torch.einsum("mof,nof->omn", w, w)):
        out = fn(weights)
        results.append((out, *torch.autograd.grad(out, weights, upstream)))
    for ours, reference in zip(*results, strict=True):
        torch.testing.assert_close(ours, reference)


def test_the_norm_preserving_mixture_has_autograds_values_and_gradients():
    """The hand-written backward of the rescaled mixture equals autograd's through the norms,
    with a member's channel at zero too; and it passes torch's numerical gradient check."""
    from zoo_rl.core.layers import norm_preserving_mixture

    def by_autograd(a, weights):
        mixed = torch.tensordot(a, weights, dims=1)
        parts = a @ weights.norm(dim=2)
        return mixed * (parts / mixed.norm(dim=1).clamp_min(1e-10))[:, None]

    gen = torch.Generator().manual_seed(0)
    a = torch.softmax(torch.randn(4, generator=gen, dtype=torch.float64), dim=0).requires_grad_()
    weights = torch.randn(4, 6, 10, generator=gen, dtype=torch.float64)
    weights[2, 3] = 0.0
    weights.requires_grad_()
    torch.autograd.gradcheck(norm_preserving_mixture, (a, weights))
    upstream = torch.randn(6, 10, generator=gen, dtype=torch.float64)
    results = []
    for fn in (norm_preserving_mixture, by_autograd):
        out = fn(a, weights)
        results.append((out, *torch.autograd.grad(out, (a, weights), upstream)))
    for ours, reference in zip(*results, strict=True):
        torch.testing.assert_close(ours, reference)
