-- Directory (LDAP / Active Directory) users: a shadow row per person who signed in through the
-- directory, so that lists, audit and sessions work as for local users. Their password is the
-- directory's (the hash column holds a value no password matches); their role comes from their
-- groups at each sign-in and session check unless an admin pinned it.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local'
    CHECK (source IN ('local', 'ldap'));
ALTER TABLE users ADD COLUMN role_pinned INTEGER NOT NULL DEFAULT 0
    CHECK (role_pinned IN (0, 1));
-- The DN the directory last returned for the user.
ALTER TABLE users ADD COLUMN directory_dn TEXT;
