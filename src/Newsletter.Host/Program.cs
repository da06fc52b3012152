using Newsletter.Host.Cli;

return await NewsletterCli.RunAsync(args);
