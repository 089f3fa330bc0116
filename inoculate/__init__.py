"""A Jupyter-first, reproducible companion for research on inoculation prompting

Modules:

- `inoculate.finetune`: Load a base model with Unsloth (4-bit on a GPU, its CPU fallback elsewhere) and train a LoRA adapter on chat rows, with the loss on assistant tokens only."""

__version__ = "0.0.1"
