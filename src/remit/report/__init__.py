"""Report and analysis: ``remit report`` (report.md/html of a flywheel run), ``remit analyze weights``
(token heat-map of ReMiT weights) and ``remit analyze shift`` (distribution shift between checkpoints).

Import-light: the modules (build, heatmap, shift) import torch/matplotlib only when used.
"""
