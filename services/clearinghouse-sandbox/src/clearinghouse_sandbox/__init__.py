"""The clearinghouse sandbox: a stand-in trading partner that answers X12 270s by rule."""
