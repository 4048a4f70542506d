"""What comes after training: finding and loading runs, export, learning curves and gate
figures, the study summary, and the ``inspect`` report of a zoo before training."""
