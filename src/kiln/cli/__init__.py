"""kiln.cli"""
