"""The console's modal screens: help, the policy picker, the hint and configure dialogs."""
