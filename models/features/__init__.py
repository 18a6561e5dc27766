"""Feature extractors and the feature spec that a checkpoint carries."""

from helo.models.features.extract import FeatureBatch, extract, extract_modality, fit_normalization
from helo.models.features.spec import FeatureSpec, ModalitySpec

__all__ = [
    "FeatureBatch",
    "FeatureSpec",
    "ModalitySpec",
    "extract",
    "extract_modality",
    "fit_normalization",
]
