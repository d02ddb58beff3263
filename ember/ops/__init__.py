"""Tensor algebra that inference builds on, at Pyro's ``pyro.ops`` paths.

Import the submodules by path (``from ember.ops.indexing import Vindex``), as in Pyro.
``ember.ops`` is the bottom layer of the package: its modules import only torch,
opt_einsum, numpy, other ``ember.ops`` modules and :mod:`ember._util`, so distributions
(e.g. the HMM family on :mod:`ember.ops.gaussian`) and inference can both use them.
"""
