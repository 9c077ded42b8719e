"""Read and write the SAE formats of SAELens and EleutherAI's sparsify.

Loaded SAEs are ordinary fitted skmpsae estimators: ``transform(X,
n_steps=...)``, ``score``, the metrics, inspection and scikit-learn tooling
work on them. Exported folders open with the peers' own loaders
(``sae_lens.SAE.load_from_disk``, ``sparsify.SparseCoder.load_from_disk``);
neither library is needed to read or write them, and nothing is unpickled.
"""

from ._saelens import load_saelens, save_saelens
from ._sparsify import load_sparsify, save_sparsify

__all__ = ["load_saelens", "load_sparsify", "save_saelens", "save_sparsify"]
