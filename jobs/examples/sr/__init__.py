"""A miniature of the paper's workload: x4 super-resolution, pre-trained once with MSE, then
fine-tuned per trial with weighted MSE/perceptual/adversarial/style losses and scored by NIQE
(docs/sr-example.md). Programs: ``python -m jobs.examples.sr.pretrain`` and ``.finetune``."""
