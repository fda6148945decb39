import sys

from keras_bioact.cli import main

sys.exit(main())
