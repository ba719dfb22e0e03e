"""Mid-training engine: pre-training and ReMiT / baseline mid-training through one loop.

Modules: ``config`` (dataclasses), ``schedule`` (LR), ``methods`` (objective registry, MiniPLM),
``reference`` (policy / reference log-probs, online or cached), ``score`` (``remit score-reference``),
``checkpoint``, ``distributed``, ``metrics``, ``perf`` (compile, activation checkpointing, fused AdamW,
precision, reference micro-batch), ``setup`` (build a run), ``engine`` (the loop),
``stage`` (``remit pretrain`` / ``remit midtrain``). Import-light: nothing is imported here.
"""
