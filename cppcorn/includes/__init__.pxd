# C declarations, one .pxd per C header (as uvloop's includes/): cimported at
# compile time, nothing to import at run time.
