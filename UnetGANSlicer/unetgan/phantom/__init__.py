"""Multi-vendor short-axis bSSFP cine phantom with exact labels.

    from unetgan.phantom import make_study, load_profile, VENDORS, write_study, write_dataset
    study = make_study("Siemens", seed=3)       # or a profile JSON path / dict
    write_study(study, "out", fmt="nifti", name="case000")

See docs/phantom.md for the model and the profile format.
"""
from .profiles import VENDORS, load_profile
from .study import Study, make_study
from .writer import write_dataset, write_study

__all__ = ["VENDORS", "Study", "load_profile", "make_study", "write_dataset", "write_study"]
