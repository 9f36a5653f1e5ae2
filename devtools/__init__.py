"""Development helpers shared by tests/ and bench/ (never imported by engine/ or app/): tiny models built from
configs (`devtools.tiny_models`) and the literal UPFB reference (`devtools.upfb_reference`)."""
