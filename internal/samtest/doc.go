// Package samtest holds the deployment to the code: its tests check that template.yaml serves
// exactly the routes of httpapi.Routes with one function each; that the consumer authorizer
// application (authorizer/template.yaml) exposes every setting of the consumer role as a
// parameter; that each function's IAM policy, conditions included, allows exactly the DynamoDB
// calls recorded on the wire from its handler or from the real authorizer binary run with the
// environment its template gives it; that the table matches dynamo.CreateTable; that every event
// in events/ gets its expected answer from its function's handler; that the SAM translator makes
// of both templates and of the README's attach snippets the authorizers API Gateway needs; that
// the README's revocation bounds hold; and that the real bootstrap binaries work under
// tools/lambdarun against DynamoDB Local. It has no code of its own.
package samtest
