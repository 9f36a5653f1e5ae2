"""Reproduce every weight of the embedded lumos-mini family: `python -m training.train_all`."""
