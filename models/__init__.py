"""The model zoo: HuBERT with five encoders, each in full precision and BiT-binarized."""
