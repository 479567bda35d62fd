"""What the upload endpoint, the writer and the operator tools share.

Nothing here imports PyTables or numpy: the upload worker imports this package.
"""
