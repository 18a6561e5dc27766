"""Feature extractors and the feature spec that a checkpoint carries."""

from models.features.extract import FeatureBatch, extract, extract_modality, fit_normalization
from models.features.spec import FeatureSpec, ModalitySpec

__all__ = [
    "FeatureBatch",
    "FeatureSpec",
    "ModalitySpec",
    "extract",
    "extract_modality",
    "fit_normalization",
]
