"""HeLo emotion-distribution model: network, features, checkpoints, data sets, training."""
