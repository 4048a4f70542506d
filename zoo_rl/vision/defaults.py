"""The defaults of a vision run, written once: ``VisionConfig``'s fields and the command line's
flags read them.  They are the paper's classification recipe (SGD with Nesterov momentum 0.9,
weight decay 5e-4, lr 0.01 decayed x0.1 at 6K and 12K of 15K iterations, batch 48).  No torch
here: the command line is parsed before anything heavy loads."""

from __future__ import annotations

VISION_DEFAULTS: dict[str, object] = dict(
    arch="resnet50", method="zoo", iters=15_000, batch_size=48, lr=0.01, momentum=0.9, optimizer="sgd",
    weight_decay=5e-4, lr_steps=(6_000, 12_000), crop=224, resize=256, seed=0, workers=2, checkpoint_freq=500,
    device="cpu",
)  # fmt: skip
