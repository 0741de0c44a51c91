"""Fixed tables of the synthetic data: networks, Schaefer names, FreeSurfer labels.

Coordinates are MNI millimetres (RAS). The tables are approximate on purpose: they only
need to put each structure in a plausible place of a coarse brain.
"""

# The seven Yeo networks: display colour (as in Schaefer 2018 tables) and the centres
# (x, y, z in mm) of the Gaussian blobs that make up each network's spatial territory.
# A negative x centre is mirrored to the right hemisphere, so territories are bilateral.
NETWORKS: dict[str, tuple[str, tuple[tuple[float, float, float], ...]]] = {
    "Vis": ("#781286", ((-20.0, -88.0, 4.0), (-30.0, -72.0, -12.0))),
    "SomMot": ("#4682b4", ((-40.0, -22.0, 56.0), (-54.0, -12.0, 20.0))),
    "DorsAttn": ("#00760e", ((-26.0, -62.0, 52.0), (-26.0, -6.0, 56.0))),
    "SalVentAttn": ("#c43afa", ((-36.0, 16.0, 2.0), (-6.0, 18.0, 40.0))),
    "Limbic": ("#dcf8a4", ((-26.0, 10.0, -32.0), (-8.0, 40.0, -22.0))),
    "Cont": ("#e69422", ((-42.0, 34.0, 30.0), (-46.0, -50.0, 44.0))),
    "Default": ("#cd3e4e", ((-4.0, -56.0, 30.0), (-6.0, 52.0, 8.0), (-50.0, -62.0, 26.0))),
}

# Schaefer 2018, 100 parcels, 7 networks: (network, sub-region, number of parcels) per
# hemisphere, in label order. LH parcels are labels 1-50, RH parcels 51-100.
SCHAEFER_100_7: dict[str, tuple[tuple[str, str, int], ...]] = {
    "LH": (
        ("Vis", "", 9),
        ("SomMot", "", 6),
        ("DorsAttn", "Post", 6),
        ("DorsAttn", "FEF", 2),
        ("SalVentAttn", "ParOper", 1),
        ("SalVentAttn", "FrOper", 2),
        ("SalVentAttn", "PFCl", 1),
        ("SalVentAttn", "Med", 3),
        ("Limbic", "OFC", 1),
        ("Limbic", "TempPole", 2),
        ("Cont", "Par", 1),
        ("Cont", "PFCl", 1),
        ("Cont", "pCun", 1),
        ("Cont", "Cing", 1),
        ("Default", "Temp", 4),
        ("Default", "PFC", 7),
        ("Default", "PCC", 2),
    ),
    "RH": (
        ("Vis", "", 8),
        ("SomMot", "", 8),
        ("DorsAttn", "Post", 5),
        ("DorsAttn", "FEF", 2),
        ("SalVentAttn", "TempOccPar", 2),
        ("SalVentAttn", "FrOper", 1),
        ("SalVentAttn", "Med", 2),
        ("Limbic", "OFC", 1),
        ("Limbic", "TempPole", 1),
        ("Cont", "Par", 2),
        ("Cont", "PFCl", 4),
        ("Cont", "PFCmp", 3),
        ("Default", "Par", 1),
        ("Default", "Temp", 3),
        ("Default", "PFCv", 2),
        ("Default", "PFCm", 3),
        ("Default", "PCC", 2),
    ),
}

# FreeSurfer Desikan-Killiany cortical parcels (aparc): label offset within 1000 (lh) and
# 2000 (rh). 1004 (corpus callosum) is not part of the DK protocol.
DK_CORTICAL: tuple[tuple[int, str], ...] = (
    (1, "bankssts"),
    (2, "caudalanteriorcingulate"),
    (3, "caudalmiddlefrontal"),
    (5, "cuneus"),
    (6, "entorhinal"),
    (7, "fusiform"),
    (8, "inferiorparietal"),
    (9, "inferiortemporal"),
    (10, "isthmuscingulate"),
    (11, "lateraloccipital"),
    (12, "lateralorbitofrontal"),
    (13, "lingual"),
    (14, "medialorbitofrontal"),
    (15, "middletemporal"),
    (16, "parahippocampal"),
    (17, "paracentral"),
    (18, "parsopercularis"),
    (19, "parsorbitalis"),
    (20, "parstriangularis"),
    (21, "pericalcarine"),
    (22, "postcentral"),
    (23, "posteriorcingulate"),
    (24, "precentral"),
    (25, "precuneus"),
    (26, "rostralanteriorcingulate"),
    (27, "rostralmiddlefrontal"),
    (28, "superiorfrontal"),
    (29, "superiorparietal"),
    (30, "superiortemporal"),
    (31, "supramarginal"),
    (32, "frontalpole"),
    (33, "temporalpole"),
    (34, "transversetemporal"),
    (35, "insula"),
)

# FreeSurfer aseg labels used by the synthetic segmentation.
ASEG_WM = {"L": 2, "R": 41}
ASEG_CORTEX = {"L": 3, "R": 42}
ASEG_CEREBELLUM_CORTEX = {"L": 8, "R": 47}
ASEG_CEREBELLUM_WM = {"L": 7, "R": 46}
ASEG_BRAINSTEM = 16

# Deep structures as ellipsoids: (name, left label, right label, centre of the left one
# (mirrored for the right), radii), all in mm. Drawn in this order, later ones on top.
ASEG_DEEP: tuple[
    tuple[str, int, int, tuple[float, float, float], tuple[float, float, float]], ...
] = (
    ("Lateral-Ventricle", 4, 43, (-14.0, -4.0, 18.0), (7.0, 24.0, 8.0)),
    ("Thalamus", 10, 49, (-11.0, -18.0, 7.0), (8.0, 11.0, 8.0)),
    ("Caudate", 11, 50, (-14.0, 12.0, 10.0), (6.0, 10.0, 8.0)),
    ("Putamen", 12, 51, (-26.0, 2.0, 0.0), (6.0, 13.0, 8.0)),
    ("Pallidum", 13, 52, (-19.0, -4.0, -1.0), (4.0, 6.0, 5.0)),
    ("Hippocampus", 17, 53, (-27.0, -22.0, -14.0), (7.0, 14.0, 7.0)),
    ("Amygdala", 18, 54, (-23.0, -4.0, -19.0), (7.0, 7.0, 7.0)),
    ("Accumbens-area", 26, 58, (-10.0, 12.0, -8.0), (5.0, 5.0, 5.0)),
)
