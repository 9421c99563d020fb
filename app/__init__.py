"""The studio as a whole: the app that puts the tabs together (server), the command line (cli) and the hand-offs
between tabs. It stands on tabs/ and core/; neither imports it (core stands alone, tabs stand on core)."""
