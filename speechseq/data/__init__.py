"""speechseq.data"""
