"""The sandbox's own small X12 code: a 270 reader and a 271/999/TA1 writer.

Written here rather than imported from the product on purpose: a stand-in trading
partner that shared the product's X12 code would agree with the product's bugs.
"""
