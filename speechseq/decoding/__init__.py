"""speechseq.decoding"""
