"""Checkpoints: where a model's weights are, what they are, and what they descend from.

The face of the stage: callers outside this package import from here, never from the submodules.
`registry` reads checkpoints.yaml and CLI paths into Checkpoint records (lineage, validation);
`layouts` recognises what a local path holds; `hub` resolves hub ids; `adapters` merges PEFT adapters;
`weights` fingerprints content and materialises any format as an HF directory an engine can load.

    forgetbench checkpoints          # list and validate checkpoints.yaml
"""
