"""Analysis of a collection's vectors: clusters with names, a 2D map, scores between two
meanings, nearest-centroid labels, precomputed related items, vector arithmetic and
near-duplicates.

Each concern is a module of its own (:mod:`.points` loads the vectors every one of them
works on); numpy, scikit-learn and matplotlib are imported inside the functions that use
them, so importing vibes stays instant.
"""
