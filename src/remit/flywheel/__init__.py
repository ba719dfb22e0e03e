"""The flywheel: pre-training -> mid-training (vanilla, ReMiT rounds, baselines) -> post-training -> eval -> report.

    remit flywheel [--config FILE] [key=value ...]     # see remit.flywheel.run
"""
