"""Data sets as windows of features with distribution labels, subjects and trials."""
