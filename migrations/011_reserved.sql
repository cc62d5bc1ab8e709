-- Number 011 is taken by a migration developed beside this one; this file keeps the sequence
-- whole until it arrives and is replaced by it. It changes nothing.
SELECT 1;
