-- Reserved: the migration merged at this number replaces this file.
SELECT 1;
