"""speechseq.text"""
