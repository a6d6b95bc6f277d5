"""US plate formats and colours by state, for the training plates (`synth.plategen`)."""

from __future__ import annotations

BGR = tuple[int, int, int]


def bgr(hex_rgb: str) -> BGR:
    v = int(hex_rgb.lstrip("#"), 16)
    return v & 255, (v >> 8) & 255, v >> 16


# Common passenger formats, APPROXIMATE: L = letter, D = digit, plus ' ' and '-' as printed.
# Good enough to teach character shapes, spacing and layouts; not an authority on any state's
# actual issuing rules (vanity, specialty and older series are far more varied).
# Colours are plausible for the state's standard plate, as "#RRGGBB": background, registration,
# state name, slogan; a second scheme, if any, is an older or alternative common issue.
_W, _LT, _YL = "#f4f4f0", "#e6eef4", "#f3e7a8"  # white, light blue-grey, pale yellow
STATES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str, str, str], ...], str]] = {
    "ALABAMA": (("DDLDDDL", "LLDDDDD"), ((_W, "#1b2a5c", "#b3262b", "#1b2a5c"),), "SWEET HOME ALABAMA"),
    "ALASKA": (("LLL DDD",), ((_YL, "#1c3a8a", "#1c3a8a", "#1c3a8a"),), "THE LAST FRONTIER"),
    "ARIZONA": (("LLLDDDD",), (("#e9eef0", "#1e2430", "#6b2b7a", "#7a3418"),), "GRAND CANYON STATE"),
    "ARKANSAS": (("LLL DDL", "DDD LLL"), ((_W, "#1b2a5c", "#b3262b", "#1b2a5c"),), "THE NATURAL STATE"),
    "CALIFORNIA": (("DLLLDDD",), ((_W, "#1b2a6a", "#b3262b", "#1b2a6a"),
                                   ("#17181c", "#e8c64a", "#e8c64a", "#e8c64a")), "DMV.CA.GOV"),
    "COLORADO": (("LLL-LDD", "DDD-LLL"), ((_W, "#1f5a32", "#1f5a32", "#1f5a32"),), "COLORFUL"),
    "CONNECTICUT": (("LL DDDDD", "DLLLLD"), (("#eaf1f8", "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "CONSTITUTION STATE"),
    "DELAWARE": (("DDDDDD", "DDDDD"), (("#1d2c57", "#e8c35a", "#e8c35a", "#e8c35a"),), "THE FIRST STATE"),
    "DIST. COLUMBIA": (("LL-DDDD",), ((_W, "#1b2a6a", "#b3262b", "#b3262b"),), "WASHINGTON, D.C."),
    "FLORIDA": (("LLL LDD", "DDD LLL", "LLLL DD"), ((_W, "#1f5a2a", "#1f5a2a", "#d2642a"),), "SUNSHINE STATE"),
    "GEORGIA": (("LLLDDDD",), ((_W, "#1a1a1a", "#1a1a1a", "#1a1a1a"),), "PEACH STATE"),
    "HAWAII": (("LLL DDD",), ((_W, "#1a1a1a", "#1a1a1a", "#1a1a1a"),), "ALOHA STATE"),
    "IDAHO": (("DL DDDDD", "DL LDDDD"), ((_W, "#7a2022", "#7a2022", "#1b2a5c"),), "FAMOUS POTATOES"),
    "ILLINOIS": (("LL DDDDD", "LLL DDDD"), ((_W, "#b32e2a", "#1b2a5c", "#1b2a5c"),), "LAND OF LINCOLN"),
    "INDIANA": (("DDDLLL", "DDDL"), ((_W, "#1b2a5c", "#1b2a5c", "#1b2a5c"),), "CROSSROADS OF AMERICA"),
    "IOWA": (("LLL DDD", "DDD LLL"), ((_W, "#1a1a1a", "#1b2a5c", "#1b2a5c"),), ""),
    "KANSAS": (("DDD LLL",), ((_LT, "#1b2a5c", "#1b2a5c", "#1b2a5c"),), ""),
    "KENTUCKY": (("DDD LLL",), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "UNBRIDLED SPIRIT"),
    "LOUISIANA": (("LLL DDD",), ((_W, "#1b2a6a", "#b3262b", "#1b2a6a"),), "SPORTSMAN'S PARADISE"),
    "MAINE": (("DDDD LL",), ((_W, "#1a1a1a", "#1b2a5c", "#1b2a5c"),), "VACATIONLAND"),
    "MARYLAND": (("DLLDDDD",), ((_W, "#1a1a1a", "#b3262b", "#1a1a1a"),), ""),
    "MASSACHUSETTS": (("DLLLDD", "DLLDDD"), ((_W, "#a8262b", "#1b2a6a", "#1b2a6a"),), "THE SPIRIT OF AMERICA"),
    "MICHIGAN": (("LLL DDDD", "DLLLDD"), ((_W, "#1a1a1a", "#1a1a1a", "#1a1a1a"),), "PURE MICHIGAN"),
    "MINNESOTA": (("LLL DDD", "DDD LLL"), ((_LT, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "10,000 LAKES"),
    "MISSISSIPPI": (("LLL DDDD",), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), ""),
    "MISSOURI": (("LLD LDL",), ((_W, "#1a1a1a", "#1b2a6a", "#1b2a6a"),), "SHOW-ME STATE"),
    "MONTANA": (("D-DDDDL", "DD-DDDDL"), (("#e4ebf2", "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "BIG SKY"),
    "NEBRASKA": (("LLL DDD",), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), ""),
    "NEVADA": (("DDL-DDD", "DLLDDD"), ((_LT, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "SILVER STATE"),
    "NEW HAMPSHIRE": (("DDD DDDD",), ((_W, "#1a5a34", "#1a5a34", "#1a5a34"),), "LIVE FREE OR DIE"),
    "NEW JERSEY": (("LDD-LLL",), ((_YL, "#1a1a1a", "#1a1a1a", "#1a1a1a"),), "GARDEN STATE"),
    "NEW MEXICO": (("LLL-DDD", "DDD-LLL"), (("#f2dc5a", "#b3262b", "#b3262b", "#b3262b"),), "LAND OF ENCHANTMENT"),
    "NEW YORK": (("LLL-DDDD",), ((_W, "#1b2a6a", "#1b2a6a", "#e08a2a"),
                                 ("#f2cf45", "#1b2a6a", "#1b2a6a", "#1b2a6a")), "EXCELSIOR"),
    "NORTH CAROLINA": (("LLL-DDDD",), ((_W, "#1b2a6a", "#b3262b", "#1b2a6a"),), "FIRST IN FLIGHT"),
    "NORTH DAKOTA": (("DDD LLL",), ((_W, "#1a1a1a", "#1b2a6a", "#1b2a6a"),), "LEGENDARY"),
    "OHIO": (("LLL DDDD",), ((_W, "#1a1a1a", "#b3262b", "#1b2a6a"),), "BIRTHPLACE OF AVIATION"),
    "OKLAHOMA": (("LLL-DDD", "LLLDDD"), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "NATIVE AMERICA"),
    "OREGON": (("DDD LLL", "LLL DDD"), ((_W, "#1b2a6a", "#1b2a6a", "#2a6a3a"),), ""),
    "PENNSYLVANIA": (("LLL-DDDD",), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),
                                     ("#1c2c6a", "#f0c84a", "#f0c84a", "#f0c84a")), "VISITPA.COM"),
    "RHODE ISLAND": (("DDD-DDD", "LL-DDD"), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "OCEAN STATE"),
    "SOUTH CAROLINA": (("LLL DDD", "DDD LLL"), ((_W, "#1a1a1a", "#1b2a6a", "#1b2a6a"),), "WHILE I BREATHE I HOPE"),
    "SOUTH DAKOTA": (("DL DDDD", "DD LDDD"), ((_LT, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "GREAT FACES. GREAT PLACES."),
    "TENNESSEE": (("LLL-DDD", "DLD-DLD"), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), "TNVACATION.COM"),
    "TEXAS": (("LLL-DDDD",), ((_W, "#1a1a1a", "#1a1a1a", "#1a1a1a"),), "THE LONE STAR STATE"),
    "UTAH": (("LDDDLL", "DLD LL"), ((_W, "#1a1a1a", "#1b2a6a", "#1b2a6a"),), "LIFE ELEVATED"),
    "VERMONT": (("LLL DDD",), (("#1f5a2a", "#f4f4f0", "#f4f4f0", "#f4f4f0"),), "GREEN MOUNTAIN STATE"),
    "VIRGINIA": (("LLL-DDDD",), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), ""),
    "WASHINGTON": (("LLLDDDD",), ((_W, "#1b2a6a", "#1b2a6a", "#1b2a6a"),), ""),
    "WEST VIRGINIA": (("DLL DDD", "LLL DDD"), ((_W, "#1b2a6a", "#1b2a6a", "#d29a2a"),), "ALMOST HEAVEN"),
    "WISCONSIN": (("LLL-DDDD", "DDD-LLL"), ((_W, "#1a1a1a", "#1b2a6a", "#1b2a6a"),), "AMERICA'S DAIRYLAND"),
    "WYOMING": (("DD-DDDD", "D-DDDDD"), ((_W, "#7a2022", "#1b2a6a", "#1b2a6a"),), "LIKE NO PLACE ON EARTH"),
}
