// Package samtest holds the deployment to the code: its tests check that template.yaml serves
// exactly the routes of httpapi.Routes with one function each, that each function's IAM policy
// allows exactly the DynamoDB calls its route makes, that the table matches dynamo.CreateTable,
// that every event in events/ gets its expected answer from its function's handler, and that
// the real bootstrap binaries work under tools/lambdarun against DynamoDB Local. It has no code
// of its own.
package samtest
