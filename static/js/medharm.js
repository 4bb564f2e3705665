// MedHarm behaviour (no inline scripts anywhere)
