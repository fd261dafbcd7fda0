"""The real-anatomy bone template: the Visible Human Male's L1–L5, sacrum, coccyx and hip bones.

The built-in patient is grown from one real skeleton instead of hand-built primitives. The shipped
asset ``assets/anatomy/vhm_lumbosacral.npz`` holds smoothed, decimated, watertight surfaces of the
Visible Human Male's lumbar vertebrae and hip bones (ArtiSynth lumbosacral model, Remus et al.
2021, BSD-3) and his sacrum and coccyx with open foramina (University of Denver, Andreassen et al.
2022, CC BY 4.0), registered into one frame with the joints in contact, plus template landmarks
computed on them by geometric rules.

Template frame: LPS millimetres (``+x`` patient Left, ``+y`` Posterior, ``+z`` Superior; see
models/frames.py) with the origin at the centre of the S1 superior endplate, orientation as the
cadaver was scanned (the lordosis and sacral slope are set later by the warp).

Modules:
    asset      the loading API (``load_template``) and its typed result
    convert    builds the asset from the shared source folder (``python -m fluorosim.models.template.convert``)
    landmarks  template landmarks by geometric rules on the meshes
"""
