"""Post-training: SFT -> on-policy DPO -> GRPO (RL with verifiable rewards), thin adapters over TRL.

    remit sft  model=runs/x/midtrain data=runs/x/world/sft.jsonl out=runs/x/sft
    remit dpo  model=runs/x/sft      data=runs/x/world/rl.jsonl  out=runs/x/dpo
    remit grpo model=runs/x/dpo      data=runs/x/world/rl.jsonl  out=runs/x/grpo
    remit posttrain model=runs/x/midtrain data_dir=runs/x/world out=runs/x/post

Modules: ``data`` (reading and checking prompt files), ``generate`` (batched sampling, reward
evaluation), ``common`` (device defaults, TRL args, checkpoint output, and ``PosttrainStage``: the
run sequence every stage shares), one module per stage (a ``PosttrainStage`` subclass with only what
is its own), and ``chain`` (the configured sequence). Kept import-light: nothing heavy is imported here.
"""
