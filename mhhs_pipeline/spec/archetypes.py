"""Names of the load archetypes the model knows (the registration ``archetype`` column)."""

DOMESTIC_ARCHETYPES = (
    "domestic_unrestricted",
    "domestic_economy7",
    "domestic_electric_heating",
    "domestic_heat_pump",
    "domestic_ev",
    "domestic_low_user",
)
NON_DOMESTIC_ARCHETYPES = (
    "office",
    "retail",
    "industrial_1_shift",
    "industrial_2_shift",
    "industrial_3_shift",
    "always_on",
    "school",
    "agricultural",
)
EXPORT_ARCHETYPES = ("pv_export",)
ALL_ARCHETYPES = DOMESTIC_ARCHETYPES + NON_DOMESTIC_ARCHETYPES + EXPORT_ARCHETYPES
