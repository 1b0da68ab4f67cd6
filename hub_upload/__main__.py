"""``python -m hub_upload stage|verify|push|unbundle|cache`` (``python -m hub_upload.stage`` registers and bundles)."""

from hub_upload.publish import main

main()
