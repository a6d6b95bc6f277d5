"""`python -m synth video OUT.avi 7ABC123 8XYZ442` (or: `images DIR PLATE ...`): see synth.scenes."""

import sys

from synth.scenes import main

sys.exit(main())
