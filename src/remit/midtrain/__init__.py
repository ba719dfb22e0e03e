"""Mid-training engine: pre-training and ReMiT / baseline mid-training through one loop.

Modules: ``config`` (dataclasses), ``schedule`` (LR), ``reference`` (policy / reference log-probs,
online or cached), ``score`` (``remit score-reference``), ``checkpoint``, ``distributed``, ``metrics``,
``perf`` (compile, activation checkpointing, fused AdamW, precision, reference micro-batch), ``trainer``
(one optimizer step), ``setup`` (build a run; the methods themselves are ``remit.methods``), ``engine``
(the loop), ``stage`` (``remit pretrain`` / ``remit midtrain``). Import-light: nothing is imported here.
"""
