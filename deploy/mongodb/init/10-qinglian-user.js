// The services' own MongoDB user, created from the same secret files the services log in
// with (QINGLIAN_MONGO_USERNAME_FILE, QINGLIAN_MONGO_PASSWORD_FILE).
//
// The mongo image runs this once, on the first start of an empty data volume, as the root
// user it created from MONGO_INITDB_ROOT_USERNAME_FILE / MONGO_INITDB_ROOT_PASSWORD_FILE.
// Root stays for operators; the services get readWriteAnyDatabase: their database
// (QINGLIAN_MONGO_DB) and the new ones `python -m services.reporting.rebuild --into ...`
// builds, nothing administrative. Nothing read from the secrets is printed.
const fs = require("fs");

function secret(name) {
  const value = fs.readFileSync(`/run/secrets/${name}`, "utf8").trim();
  if (!value) {
    throw new Error(`secret ${name} is empty`);
  }
  return value;
}

const admin = db.getSiblingDB("admin");
const user = secret("mongo_username");
if (admin.getUser(user) === null) {
  admin.createUser({
    user: user,
    pwd: secret("mongo_password"),
    roles: [{ role: "readWriteAnyDatabase", db: "admin" }],
  });
  print("qinglian: created the services' MongoDB user");
}
