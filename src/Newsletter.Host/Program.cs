using Newsletter.Cli;

return await NewsletterCli.RunAsync(args);
