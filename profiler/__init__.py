"""Storage, MACs/FLOPs, bit operations and runtime estimates of PyTorch models."""
