"""Training on export snapshots: SFT, a process reward model, GRPO with process rewards.

Reads the snapshot files the workbench exports (TRL's dataset shapes); never imports Django.
Run a stage with ``python -m training sft|prm|grpo --config training/configs/NAME.yaml``.
"""
