"""Deployment: a checkpoint as a portable ONNX file with its preprocessing inside, and an
HTTP server (LitServe) for a checkpoint or such a file.

- :mod:`netscope.deploy.spec`: what a client sends and gets (input shape, dtype, normalization,
  class names), read from the datamodule and model, carried as ONNX metadata.
- :mod:`netscope.deploy.graph`: the network with normalization, test-time augmentation and
  the probability head in one ``nn.Module`` (what is exported and what PyTorch serves).
- :mod:`netscope.deploy.checkpoint`: the checkpoint's weights and datamodule state, restored.
- :mod:`netscope.deploy.export`: ``torch.onnx.export`` with metadata.
- :mod:`netscope.deploy.parity`: onnxruntime against PyTorch on the first test inputs.
- :mod:`netscope.deploy.decode`: request bodies to input arrays, every bad input a ``BadInput``.
- :mod:`netscope.deploy.gate`: the ASGI middleware that decodes and rejects at the front door.
- :mod:`netscope.deploy.serve`: the LitServe API and server.
- :mod:`netscope.deploy.commands`: the ``export`` and ``serve`` commands, put together.
"""
