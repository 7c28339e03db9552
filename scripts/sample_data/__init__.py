"""Building blocks of ``scripts/make_sample_data.py``: one module per sample source."""
