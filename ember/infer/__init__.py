"""Inference algorithms built on the handlers (ELBOs, SVI, guides, predictive)."""

# --- imports: optim/SVI/predictive/importance (helper D) ---
# --- end helper D imports ---
# --- imports: ELBOs (helper E) ---
# --- end helper E imports ---
# --- imports: autoguide (helper F) ---
# --- end helper F imports ---
# --- imports: reparam/config_enumerate (lead) ---
# --- end lead imports ---

__all__: list[str] = [
    # helper D
    # helper E
    # helper F
    # lead
]
