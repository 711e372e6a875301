import torch

# The suite's tensors are small; one thread avoids oversubscribing shared CI cores.
torch.set_num_threads(1)
