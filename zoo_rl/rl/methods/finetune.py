"""Fine-tuning from one source: NatureCNN initialised from one zoo member's extractor.

The heads (policy, value or Q) are new: the target game's action set differs from the
source's, so only the feature extractor carries over.
"""

import torch

from zoo_rl.rl.config import RunConfig
from zoo_rl.rl.zoo_files import nature_cnn_weights

from .base import Method, nature_cnns


class Finetune(Method):
    name = "finetune"
    needs_source = True
    exportable = True

    def initialize(self, model, config: RunConfig) -> None:
        assert config.source is not None
        weights = nature_cnn_weights(config.source, in_channels=config.settings.frame_stack)
        with torch.no_grad():
            for cnn in nature_cnns(model):
                cnn.load_state_dict(weights)
