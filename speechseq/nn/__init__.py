"""speechseq.nn"""
